"""The train stage: config and records shared with trainer plugins, and the stage that runs one (`stage.py`)."""
