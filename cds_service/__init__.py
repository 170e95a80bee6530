"""ivig-cds plumbing: HTTP, protocol, authentication, FHIR access and configuration."""

from cds_service.app import create_app

__all__ = ["create_app"]
