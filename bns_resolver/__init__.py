"""bns-resolver: a local DNS gateway for Blockstack Naming System (BNS v1) names."""

__version__ = "0.1.0"
