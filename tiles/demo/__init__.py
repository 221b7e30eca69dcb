"""What the demo publishes besides the district itself (``cadastre.demo``): its
orthophoto and its oblique-photogrammetry scene, generated from the district's data.
"""
