"""The age model: build, data, train, evaluate, explore, export, and the inference API.

This package knows nothing of ``auditor``. The auditor uses only what is imported here.
"""
