"""Channels: thin translators from a request on SMS (Kannel), voice (VoiceXML, SIP),
mobile web and the operator console to one service call, and from error codes back to
each channel's own words. The HTTP API's routers live with their contexts (``*/api.py``)."""
