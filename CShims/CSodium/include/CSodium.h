// CSodium: libsodium (Debian libsodium-dev) for RustDesk's key material.
// Why libsodium and not swift-crypto: upstream signs with libsodium's deterministic RFC 8032
// Ed25519 over the public half stored in the key file, and the optional KeyExchange extension
// (PROTOCOL.md §4.5) needs NaCl crypto_box / crypto_secretbox (XSalsa20-Poly1305), which
// swift-crypto does not offer. Nothing is wrapped: <sodium.h> imports cleanly.
#ifndef CSODIUM_H
#define CSODIUM_H
#include <sodium.h>
#endif
