"""Sealdrop's cryptography, kept pure: no config, no database, no file paths, no processes or
threads (the age child process that encrypts large files is ``services/age_child.py``).

Every function works on values and on the streams it is handed, so each construction can be tested
(and audited) on its own. ``keys`` wraps age X25519 keys, ``envelope`` is the age encrypt/decrypt
API, ``codenames`` makes and normalises codenames, ``derive`` turns a codename into the source's
keys, ``sealing`` seals data under a session key,
``passphrase`` makes and opens passphrase-encrypted age files.
"""
