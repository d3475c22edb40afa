"""horeca: find HoReCa businesses visible online but missing from the enterprise register.

Data flows one way:
    sources config -> legal_gate -> spiders -> store -> register -> geocode -> keying -> exports
"""

__version__ = "0.1.0"

