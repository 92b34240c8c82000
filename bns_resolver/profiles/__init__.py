"""Data plane: Gaia profiles, fetched from untrusted storage and trusted only once verified.

A profile counts as verified only when its token's ES256K signature checks against
the issuer's public key and that key hashes to the name's owner address.
"""
