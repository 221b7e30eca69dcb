"""The register's versioned model: writes that close a version and open the next.
"""
