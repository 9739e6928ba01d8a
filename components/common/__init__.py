"""Run-wide plumbing every stage uses: side files, stop requests, output-path checks."""
