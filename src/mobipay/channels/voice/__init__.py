"""The voice channel: one dialog definition (dialog.py) run per call (session.py) behind two
fronts, VoiceXML documents for the operator's IVR (vxml.py) and a SIP user agent (sip.py)."""
