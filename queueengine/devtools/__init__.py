"""Development tools: embedded and local-cluster servers, the pytest plugin, mode benchmarks, the compliance harness."""
