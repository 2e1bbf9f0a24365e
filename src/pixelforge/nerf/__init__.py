"""Neural radiance fields: cameras, scenes, fields, rendering."""
