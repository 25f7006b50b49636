"""Video layer: probe uploads and render platform-ready, disclosure-burned masters with ffmpeg."""
