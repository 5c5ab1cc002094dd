"""gc.save / gc.load (written in the next change)."""
