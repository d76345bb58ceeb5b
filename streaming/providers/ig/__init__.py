"""IG Level 1: the polling ``provider``, its REST session (``rest``) and the parsing of a
market snapshot into prints and quotes (``snapshot``)."""
