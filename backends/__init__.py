"""mcuc.backends: code generators consuming a scheduled Program."""
