"""The sandbox story (`scripts/run` without credentials), walked in headless Chromium."""
