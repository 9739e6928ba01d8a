"""Language modeling (characters or words) and generation: `task.type: language_model`."""
