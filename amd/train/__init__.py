"""Training: a loop with hooks, and the trainers of target models and interpreters."""
