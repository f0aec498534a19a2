"""jobadmin: the operator dashboard and Django admin integration for queueengine."""
