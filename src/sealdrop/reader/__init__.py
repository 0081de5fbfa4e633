"""`sealdrop reader`: the journalist's local app.

Everything secret lives and is decrypted here, on the journalist's own machine: ``keystore`` keeps
the age identity in a passphrase-encrypted file, ``export`` writes a decrypted file to a folder the
journalist chooses, through mat2. The reader talks to the server only over HTTP (an import-linter
contract forbids importing ``sealdrop.web``, ``services``, ``storage`` or ``cli``).
"""
