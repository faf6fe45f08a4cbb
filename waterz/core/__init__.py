"""The ground floor every layer imports from below: geometry, masks, the mark's matte, stop tokens,
errors, settings, logging and the engine registries."""
