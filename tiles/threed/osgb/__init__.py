"""OpenSceneGraph binary (.osgb) productions (ContextCapture / Smart3D / 大疆智图 layout)."""
