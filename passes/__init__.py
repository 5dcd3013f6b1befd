"""mcuc.passes: graph-to-graph passes and scheduling (imports only mcuc.ir)."""
