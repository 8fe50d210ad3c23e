//! Keys, key envelopes, object encryption, id hashes, TAM and passphrases (spec §4).
