"""Digits from the world: photo preprocessing, prediction, and the draw-a-digit web page."""
