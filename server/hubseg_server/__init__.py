"""hubseg HTTP server (Flask app factory ``create_app``)."""
