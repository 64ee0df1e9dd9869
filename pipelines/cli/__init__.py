"""Commands: the `flights` CLI, one module per command group."""
