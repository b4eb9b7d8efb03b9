"""The review app (``auditor serve``): flags and evidence for reviewers, threshold analytics."""

from auditor.web.app import create_app

__all__ = ["create_app"]
