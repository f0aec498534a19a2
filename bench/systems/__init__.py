"""One adapter per system; ``python -m systems.runner SYSTEM ACTION`` runs one workload."""
