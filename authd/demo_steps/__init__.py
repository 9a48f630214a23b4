"""Steps of the demo scenario, one module per area, each with ``run(ctx)``."""
