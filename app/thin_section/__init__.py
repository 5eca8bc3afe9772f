"""GUI helpers of the thin-section workflow: the live classifier panel and what the thin-section dock embeds."""
