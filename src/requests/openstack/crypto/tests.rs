use aes::cipher::generic_array::GenericArray;
use aes::cipher::BlockEncryptMut;
use base64ct::{Base64, Encoding};

use super::*;

// The test vector (checked against `openssl enc`, both digests).
const HOST_PRIV: u128 = 0x0123456789abcdef0123;
/// The vector's guest key, 0x1122334455667788990011223344556677, has 133
/// bits: this is it modulo p − 1, which gives the same powers (Fermat).
const GUEST_PRIV: u128 = 0x4556677889900112233489df347;
const HOST_PUB: u128 = 128492706489454800633959484585958;
const GUEST_PUB: u128 = 152108779822792496943595578415319;
const S: &str = "160213464622642021152387330981339";
const MD5_KEY_IV: &str = "cd295560e124bc03731bc824ee23b7e2e6780123c39a618a0ee496274e67fd87";
const PASSWORD: &str = "S3cret-pa55";
const MD5_B64: &str = "gIq+uERe9fym4j3G4kECBg==";
const SHA256_B64: &str = "LCiMQMwg74WqSKK05kG3pw==";

fn secret(s: &str) -> Secret {
    Secret(Zeroizing::new(s.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy, Debug)]
enum Kdf {
    Md5,
    Sha256,
}
const KDFS: [Kdf; 2] = [Kdf::Md5, Kdf::Sha256];

/// `key ‖ iv` as `openssl enc -nosalt -md <kdf>` derives them, written
/// out apart from the module's loop.
fn key_iv(pass: &str, kdf: Kdf) -> [u8; 32] {
    let mut out = [0; 32];
    match kdf {
        Kdf::Md5 => {
            let key = Md5::digest(pass);
            let iv = Md5::new().chain_update(key).chain_update(pass).finalize();
            out[..16].copy_from_slice(&key);
            out[16..].copy_from_slice(&iv);
        }
        Kdf::Sha256 => out.copy_from_slice(&Sha256::digest(pass)),
    }
    out
}

/// AES-128-CBC of `padded` exactly as given (a whole number of blocks:
/// the caller pads, or pads wrong), in base64 as nova sends it.
fn encrypt_raw(pass: &str, kdf: Kdf, padded: &[u8]) -> String {
    assert_eq!(padded.len() % 16, 0, "the test pads to whole blocks");
    let ki = key_iv(pass, kdf);
    let mut enc = cbc::Encryptor::<aes::Aes128>::new(
        GenericArray::from_slice(&ki[..16]),
        GenericArray::from_slice(&ki[16..]),
    );
    let mut buf = padded.to_vec();
    for block in buf.chunks_exact_mut(16) {
        enc.encrypt_block_mut(GenericArray::from_mut_slice(block));
    }
    Base64::encode_string(&buf)
}

fn pkcs7(msg: &[u8]) -> Vec<u8> {
    let n = 16 - msg.len() % 16;
    let mut v = msg.to_vec();
    v.resize(msg.len() + n, n as u8);
    v
}

/// What `openssl enc -aes-128-cbc -nosalt -a -A -pass pass:<pass>` makes
/// of `plaintext`.
fn encrypt(pass: &str, kdf: Kdf, plaintext: &[u8]) -> String {
    encrypt_raw(pass, kdf, &pkcs7(plaintext))
}

fn decrypt(b64: &str) -> Result<Zeroizing<String>, PasswordError> {
    decrypt_password(&secret(S), b64)
}

/// Why the MD5 key (the one the test encrypted with) was rejected.
fn md5_rejected(b64: &str) -> Reject {
    match decrypt(b64) {
        Err(PasswordError::Invalid(Why::Keys { md5, .. })) => md5,
        other => panic!("{b64}: expected an invalid password, got {other:?}"),
    }
}

// --- the test vector ---

#[test]
fn the_vectors_public_keys() {
    assert_eq!(KeyExchange::from_private(HOST_PRIV).public(), HOST_PUB);
    assert_eq!(KeyExchange::from_private(GUEST_PRIV).public(), GUEST_PUB);
}

#[test]
fn the_vectors_shared_secret_both_ways() {
    let guest = KeyExchange::from_private(GUEST_PRIV);
    let host = KeyExchange::from_private(HOST_PRIV);
    assert_eq!(guest.shared(&HOST_PUB.to_string()).unwrap().0.as_str(), S);
    assert_eq!(host.shared(&GUEST_PUB.to_string()).unwrap().0.as_str(), S);
}

#[test]
fn the_vectors_keys() {
    assert_eq!(hex(&*bytes_to_key::<Md5>(S.as_bytes())), MD5_KEY_IV);
    assert_eq!(hex(&key_iv(S, Kdf::Md5)), MD5_KEY_IV);
    assert_eq!(
        *bytes_to_key::<Sha256>(S.as_bytes()),
        key_iv(S, Kdf::Sha256)
    );
}

#[test]
fn the_test_encryption_makes_the_vectors_ciphertexts() {
    let plain = format!("{PASSWORD}\n");
    assert_eq!(encrypt(S, Kdf::Md5, plain.as_bytes()), MD5_B64);
    assert_eq!(encrypt(S, Kdf::Sha256, plain.as_bytes()), SHA256_B64);
}

#[test]
fn the_vectors_passwords_decrypt() {
    assert_eq!(decrypt(MD5_B64).unwrap().as_str(), PASSWORD);
    assert_eq!(decrypt(SHA256_B64).unwrap().as_str(), PASSWORD);
}

#[test]
fn the_whole_exchange_from_dom0s_side() {
    // dom0 sends its public key, reads the guest's, encrypts with its own
    // view of the secret.
    let guest = KeyExchange::from_private(GUEST_PRIV);
    let guest_secret = guest.shared(&HOST_PUB.to_string()).unwrap();
    let host_view = KeyExchange::from_private(HOST_PRIV)
        .shared(&guest.public().to_string())
        .unwrap();
    let b64 = encrypt(host_view.0.as_str(), Kdf::Sha256, b"from dom0\n");
    assert_eq!(
        decrypt_password(&guest_secret, &b64).unwrap().as_str(),
        "from dom0"
    );
}

// --- passwords that decrypt ---

#[test]
fn round_trips_with_both_digests() {
    let long = "x".repeat(100);
    let passwords = [
        "a",
        "fourteen chars",  // 15 with "\n": pad 1
        "fifteen chars!!", // 16 with "\n": a whole block of padding
        "sixteen chars!!!",
        "pässwörd €𝄞 spaces ok",
        long.as_str(),
    ];
    for kdf in KDFS {
        for pw in passwords {
            let b64 = encrypt(S, kdf, format!("{pw}\n").as_bytes());
            assert_eq!(decrypt(&b64).unwrap().as_str(), pw, "{kdf:?} {pw:?}");
        }
    }
}

#[test]
fn surrounding_ascii_whitespace_is_accepted() {
    for b64 in [
        format!("{MD5_B64}\n"),
        format!("{MD5_B64}\r\n"),
        format!("  \t{MD5_B64} \n"),
        format!("\n{SHA256_B64}"),
    ] {
        assert_eq!(decrypt(&b64).unwrap().as_str(), PASSWORD, "{b64:?}");
    }
}

// --- what is refused ---

#[test]
fn not_base64() {
    for b64 in [
        "not base64!",
        "gIq+uERe9fym4j3G4kECBg",    // padding left out
        "gIq+uERe 9fym4j3G4kECBg==", // whitespace inside
        "gIq-uERe9fym4j3G4kECBg==",  // URL-safe alphabet
        "gIq+uERe9fym4j3G4kECBg==\u{a0}",
    ] {
        assert!(
            matches!(decrypt(b64), Err(PasswordError::NotBase64)),
            "{b64:?}"
        );
    }
}

#[test]
fn a_length_that_is_not_whole_blocks() {
    for (len, b64) in [
        (0, String::new()),
        (0, " \n".to_string()),
        (15, Base64::encode_string(&[7u8; 15])),
        (17, Base64::encode_string(&[7u8; 17])),
        (31, Base64::encode_string(&[7u8; 31])),
    ] {
        match decrypt(&b64) {
            Err(PasswordError::Invalid(Why::Length(n))) => assert_eq!(n, len),
            other => panic!("{b64:?}: {other:?}"),
        }
    }
}

#[test]
fn the_wrong_secret() {
    let b64 = encrypt("160213464622642021152387330981338", Kdf::Md5, b"pw\n");
    assert!(matches!(
        decrypt(&b64),
        Err(PasswordError::Invalid(Why::Keys { .. }))
    ));
    let other = KeyExchange::from_private(HOST_PRIV + 1)
        .shared(&GUEST_PUB.to_string())
        .unwrap();
    let b64 = encrypt(other.0.as_str(), Kdf::Sha256, b"pw\n");
    assert!(matches!(
        decrypt(&b64),
        Err(PasswordError::Invalid(Why::Keys { .. }))
    ));
}

#[test]
fn bad_padding() {
    let mut pad0 = b"password\n".to_vec();
    pad0.resize(16, 0);
    let mut pad17 = b"password\n".to_vec();
    pad17.resize(32, 17);
    let mut mixed = b"password\n".to_vec();
    mixed.extend([7, 7, 7, 6, 7, 7, 7]);
    let mut none = b"password\n".to_vec();
    none.resize(16, b'x');
    let mut longer_than_text = vec![16u8; 15];
    longer_than_text.push(32);
    longer_than_text.extend([32u8; 16]);
    for padded in [pad0, pad17, mixed, none, longer_than_text] {
        let b64 = encrypt_raw(S, Kdf::Md5, &padded);
        assert_eq!(md5_rejected(&b64), Reject::Padding, "{padded:?}");
    }
}

#[test]
fn no_final_newline() {
    for plain in [&b"S3cret-pa55"[..], b"S3cret-pa55\r", b"S3cret-pa55 "] {
        let b64 = encrypt(S, Kdf::Md5, plain);
        assert_eq!(md5_rejected(&b64), Reject::NoNewline, "{plain:?}");
    }
}

#[test]
fn not_utf8() {
    for plain in [&b"\xff\xfe\n"[..], b"caf\xc3\n", b"\xed\xa0\x80\n"] {
        let b64 = encrypt(S, Kdf::Md5, plain);
        assert_eq!(md5_rejected(&b64), Reject::NotUtf8, "{plain:?}");
    }
}

#[test]
fn control_characters_inside() {
    for plain in [
        "a\0b\n",
        "a\nb\n",
        "pw\n\n",
        "a\rb\n",
        "a\tb\n",
        "\x1b[0m\n",
        "del\x7f\n",
        "c1\u{85}\n",
    ] {
        let b64 = encrypt(S, Kdf::Md5, plain.as_bytes());
        assert_eq!(md5_rejected(&b64), Reject::Control, "{plain:?}");
    }
}

#[test]
fn an_empty_password() {
    let b64 = encrypt(S, Kdf::Md5, b"\n");
    assert_eq!(md5_rejected(&b64), Reject::Empty);
    let b64 = encrypt(S, Kdf::Md5, b"");
    assert_eq!(md5_rejected(&b64), Reject::NoNewline);
}

#[test]
fn the_protocols_messages() {
    assert_eq!(
        PasswordError::NotBase64.to_string(),
        "Couldn't decode base64 data"
    );
    assert_eq!(
        PasswordError::NoKeyExchange.to_string(),
        "Password without key exchange"
    );
    let invalid = PasswordError::Invalid(Why::Length(15));
    assert_eq!(invalid.to_string(), "Invalid password data received");
    assert_eq!(
        Why::Length(15).to_string(),
        "the ciphertext is 15 bytes, not a non-zero multiple of 16"
    );
    let keys = Why::Keys {
        md5: Reject::Padding,
        sha256: Reject::NoNewline,
    };
    assert_eq!(
        keys.to_string(),
        "no key decrypts it to a password (MD5 key: invalid PKCS#7 padding; \
         SHA-256 key: no final newline)"
    );
}

// --- the arithmetic ---

/// (a · b) mod p by doubling and adding, bit by bit: slow, obviously right.
fn slow_mul(a: u128, b: u128) -> u128 {
    let mut r = 0;
    for i in (0..128).rev() {
        r = (2 * r) % P;
        if (b >> i) & 1 == 1 {
            r = (r + a) % P;
        }
    }
    r
}

fn slow_pow(base: u128, exp: u128) -> u128 {
    let mut r = 1;
    for i in (0..128).rev() {
        r = slow_mul(r, r);
        if (exp >> i) & 1 == 1 {
            r = slow_mul(r, base);
        }
    }
    r
}

const EDGES: [u128; 20] = [
    0,
    1,
    2,
    3,
    5,
    (1 << 32) + 7,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
    1 << 64,
    (1 << 64) + 1,
    (1 << 106) - 1,
    1 << 106,
    (1 << 106) + 1,
    P / 2,
    P - 3,
    P - 2,
    P - 1,
    HOST_PUB,
    0x555_5555_5555_5555_5555_5555_5555,
];

#[test]
fn p_is_the_mersenne_prime() {
    assert_eq!(P, 162259276829213363391578010288127);
    assert_eq!(P.to_string().len(), P_DIGITS);
}

#[test]
fn multiplication_matches_the_slow_reference() {
    for a in EDGES {
        for b in EDGES {
            assert_eq!(mul_mod(a, b), slow_mul(a, b), "{a} * {b}");
        }
    }
    // The largest product there is: (p − 1)² = 1 (mod p).
    assert_eq!(mul_mod(P - 1, P - 1), 1);
}

#[test]
fn folding_at_the_edges() {
    // x mod p for every x < 2^108 that the fold can be handed.
    for (x, want) in [
        (0, 0),
        (P - 1, P - 1),
        (P, 0),
        (P + 1, 1),
        (2 * P, 0),
        (1 << 107, 1),
        ((1 << 108) - 1, 1),
    ] {
        assert_eq!(fold(x), want, "{x}");
    }
}

#[test]
fn small_powers_of_g() {
    // 5^55 < 2^128: the plain power, then the remainder.
    for e in 0..=55u32 {
        assert_eq!(pow_mod(G, u128::from(e)), G.pow(e) % P, "5^{e}");
    }
}

#[test]
fn large_powers_match_the_slow_reference() {
    for (base, exp) in [
        (G, HOST_PRIV),
        (G, GUEST_PRIV),
        (HOST_PUB, GUEST_PRIV),
        (P - 2, P - 2),
        (3, u128::MAX),
    ] {
        assert_eq!(pow_mod(base, exp), slow_pow(base, exp), "{base}^{exp}");
    }
    // Fermat: x^(p−1) = 1, x^p = x.
    for x in [G, 2, P - 2, HOST_PUB] {
        assert_eq!(pow_mod(x, P - 1), 1);
        assert_eq!(pow_mod(x, P), x);
    }
}

// --- keys ---

#[test]
fn new_private_keys_are_random_and_in_range() {
    let a = KeyExchange::new().unwrap();
    let b = KeyExchange::new().unwrap();
    assert_ne!(a.private, b.private);
    for k in [&a, &b] {
        assert!((2..=P - 2).contains(&k.private));
        assert!((1..P).contains(&k.public()));
    }
}

#[test]
fn invalid_public_keys() {
    let too_long = "1".repeat(1000);
    let cases: [(&str, BadKey); 17] = [
        ("", BadKey::Empty),
        (" \n", BadKey::Empty),
        ("abc", BadKey::NotDecimal),
        ("-5", BadKey::NotDecimal),
        ("+5", BadKey::NotDecimal),
        ("12a", BadKey::NotDecimal),
        ("1 2", BadKey::NotDecimal),
        ("0x1f", BadKey::NotDecimal),
        ("\u{663}", BadKey::NotDecimal), // ARABIC-INDIC DIGIT THREE
        ("0", BadKey::Trivial(0)),
        ("1", BadKey::Trivial(1)),
        ("162259276829213363391578010288126", BadKey::Trivial(P - 1)),
        ("162259276829213363391578010288127", BadKey::NotBelowP(P)),
        (
            "999999999999999999999999999999999",
            BadKey::NotBelowP(10u128.pow(33) - 1),
        ),
        ("1000000000000000000000000000000000", BadKey::TooLong(34)),
        (
            "340282366920938463463374607431768211456",
            BadKey::TooLong(39),
        ),
        (too_long.as_str(), BadKey::TooLong(1000)),
    ];
    let kx = KeyExchange::from_private(GUEST_PRIV);
    for (text, want) in cases {
        match kx.shared(text) {
            Err(got) => assert_eq!(got, want, "{text:?}"),
            Ok(_) => panic!("{text:?} accepted"),
        }
    }
}

#[test]
fn valid_public_keys_at_the_edges() {
    let kx = KeyExchange::from_private(GUEST_PRIV);
    for (text, value) in [
        ("2", 2),
        ("162259276829213363391578010288125", P - 2),
        (" 128492706489454800633959484585958\n", HOST_PUB),
        ("0000005", 5),
    ] {
        let s = kx.shared(text).unwrap();
        assert_eq!(s.0.as_str(), pow_mod(value, GUEST_PRIV).to_string());
    }
}

#[test]
fn the_messages_about_public_keys() {
    assert_eq!(
        BadKey::NotBelowP(P).to_string(),
        "dom0's public key 162259276829213363391578010288127 is not below the prime 2^107 - 1"
    );
    assert_eq!(
        BadKey::TooLong(40).to_string(),
        "dom0's public key has 40 digits, more than the prime 2^107 - 1 (33)"
    );
}

#[test]
fn debug_shows_no_secret() {
    let kx = KeyExchange::from_private(GUEST_PRIV);
    let shown = format!("{kx:?}");
    assert!(!shown.contains(&GUEST_PRIV.to_string()), "{shown}");
    assert!(shown.contains(&GUEST_PUB.to_string()), "{shown}");
    let shown = format!("{:?}", kx.shared(&HOST_PUB.to_string()).unwrap());
    assert!(!shown.contains(S), "{shown}");
}
