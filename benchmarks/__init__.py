"""Speed and quality benchmarks. Each writes JSON; none of them asserts."""
