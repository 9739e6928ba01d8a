"""rnnflow: production TFX pipelines for recurrent sequence models.

The repository keeps the fixed top-level layout (pipeline/, components/,
models/) and installs it as the `rnnflow` namespace, so the package never
shadows generic top-level names like `models` in a user's environment. This
file also works as Beam's --setup_file for Dataflow workers.
"""

from setuptools import find_packages, setup

# Every package below the fixed top-level directories, as rnnflow.<path>: a new task's package
# (components/<task>/ with an __init__.py) installs without an edit here.
PACKAGES = {f"rnnflow.{name}": name.replace(".", "/")
            for name in find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                               "models", "models.*"])}

setup(
    name="rnnflow",
    version="0.1.0",
    description="Production TFX pipelines for recurrent sequence models",
    python_requires=">=3.10",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    # Built-in configs, and the sample data a task package ships in its data/ folder (with its licence).
    package_data={"rnnflow.pipeline.configs": ["*.yaml"],
                  **{package: ["data/*"] for package in PACKAGES if package.startswith("rnnflow.components.")}},
    # The full, pinned stack is requirements/lock.txt; these are the direct imports.
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow~=2.16.1",
        "tensorflow-text~=2.16.1",
        "keras>=3.3,<3.7",
        "keras-tuner==1.4.7",
        "pyyaml>=6",
    ],
    entry_points={"console_scripts": ["rnnflow=rnnflow.pipeline.cli:main"]},
)
