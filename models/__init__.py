"""LightGBM flush and direction models and the bundle that ships them."""
