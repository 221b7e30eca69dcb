"""Configurations for what runs in front of or beside the server (``cadastre deploy``)."""
