"""Datasets and task samplers: every dataset becomes in-memory tensors, every task a TaskBatch."""
