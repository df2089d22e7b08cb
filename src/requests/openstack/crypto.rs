//! The crypto of nova's password exchange: a Diffie-Hellman key exchange
//! (`keyinit`), then the password (`password`), AES-128-CBC encrypted
//! under the shared secret as `openssl enc -aes-128-cbc -nosalt -pass
//! pass:<secret>` does it, sent in base64.
//!
//! The group is nova's: p = 2^107 − 1 (a Mersenne prime), g = 5. Keys of
//! 107 bits give no secrecy against anyone who sees the exchange: what
//! keeps the password between dom0 and the guest is that only they can
//! read the xenstore nodes it passes through. So nothing here tries to be
//! constant time; it does try not to leave the private key, the secret or
//! the password behind in memory it frees (best effort: the hashers'
//! internal state, registers and stack copies are out of its reach).

use std::fmt::{self, Write as _};
use std::io;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use base64ct::{Base64, Encoding};
use md5::{Digest, Md5};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The group's prime, 2^107 − 1.
const P: u128 = (1 << 107) - 1;

/// The group's generator.
const G: u128 = 5;

/// Decimal digits of [`P`]: a public key with more cannot be below it.
const P_DIGITS: usize = 33;

/// AES's block size.
const BLOCK: usize = 16;

/// The guest's half of the key exchange: its private key (wiped on drop).
pub struct KeyExchange {
    private: u128,
}

impl KeyExchange {
    /// A new private key, from the operating system's random source, for a
    /// `keyinit` command. Fails only when that source cannot be read.
    pub fn new() -> Result<KeyExchange, io::Error> {
        let mut bytes = Zeroizing::new([0u8; 16]);
        crate::sys::random_bytes(&mut *bytes)?;
        let mut r = u128::from_le_bytes(*bytes);
        // Into [2, p − 2]: keys 0, 1 and p − 1 would give away the secret.
        // The bias of the remainder (about 2^-21) does not matter here.
        let private = 2 + r % (P - 3);
        r.zeroize();
        Ok(KeyExchange { private })
    }

    /// A known private key, taken as it is (any exponent): for test
    /// vectors.
    pub fn from_private(private: u128) -> KeyExchange {
        KeyExchange { private }
    }

    /// The public key, g^private mod p, that the guest answers `keyinit`
    /// with (in decimal).
    pub fn public(&self) -> u128 {
        pow_mod(G, self.private)
    }

    /// The shared secret from dom0's public key as `keyinit` sends it (a
    /// decimal number, surrounding ASCII whitespace allowed). A key that is
    /// no element of the group, or a trivial one, is refused.
    pub fn shared(&self, host_pub: &str) -> Result<Secret, BadKey> {
        let host = parse_public(host_pub)?;
        let mut s = pow_mod(host, self.private);
        // Room for u128::MAX: the digits are written once, never moved.
        let mut text = Zeroizing::new(String::with_capacity(39));
        // A String's fmt::Write never fails.
        let _ = write!(text, "{s}");
        s.zeroize();
        Ok(Secret(text))
    }
}

impl Drop for KeyExchange {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl ZeroizeOnDrop for KeyExchange {}

impl fmt::Debug for KeyExchange {
    /// The public key only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyExchange {{ public: {} }}", self.public())
    }
}

/// The shared secret: its decimal digits are the passphrase `openssl enc`
/// derives the AES key from (wiped on drop).
pub struct Secret(Zeroizing<String>);

impl ZeroizeOnDrop for Secret {}

impl fmt::Debug for Secret {
    /// Nothing of the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why dom0's public key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadKey {
    /// Nothing but whitespace.
    Empty,
    /// Not ASCII decimal digits alone.
    NotDecimal,
    /// More digits than p has (how many).
    TooLong(usize),
    /// 0, 1 or p − 1: the secret would be one of three known values.
    Trivial(u128),
    /// Not an element of the group.
    NotBelowP(u128),
}

impl fmt::Display for BadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadKey::Empty => write!(f, "dom0's public key is empty"),
            BadKey::NotDecimal => write!(f, "dom0's public key is not a decimal number"),
            BadKey::TooLong(n) => write!(
                f,
                "dom0's public key has {n} digits, more than the prime 2^107 - 1 ({P_DIGITS})"
            ),
            BadKey::Trivial(v) => write!(
                f,
                "dom0's public key {v} is 0, 1 or p - 1: the secret would be known"
            ),
            BadKey::NotBelowP(v) => {
                write!(f, "dom0's public key {v} is not below the prime 2^107 - 1")
            }
        }
    }
}

impl std::error::Error for BadKey {}

/// Why a password was refused. Displayed as the message nova's agents
/// answer with; [`Why`] says more, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordError {
    /// Not base64 (standard alphabet, padded, in one line).
    NotBase64,
    /// A password before any `keyinit`: there is no secret to decrypt it
    /// with (for the caller, who holds the secret, to answer).
    NoKeyExchange,
    /// Not a password encrypted under this secret.
    Invalid(Why),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordError::NotBase64 => "Couldn't decode base64 data",
            PasswordError::NoKeyExchange => "Password without key exchange",
            PasswordError::Invalid(_) => "Invalid password data received",
        })
    }
}

impl std::error::Error for PasswordError {}

/// What was wrong with a ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Its length (in bytes) is not a non-zero multiple of the block.
    Length(usize),
    /// Neither key derivation decrypts it to a password: what each gave.
    Keys {
        /// OpenSSL's old default, nova's.
        md5: Reject,
        /// OpenSSL's default since 1.1.
        sha256: Reject,
    },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Length(n) => write!(
                f,
                "the ciphertext is {n} bytes, not a non-zero multiple of {BLOCK}"
            ),
            Why::Keys { md5, sha256 } => write!(
                f,
                "no key decrypts it to a password (MD5 key: {md5}; SHA-256 key: {sha256})"
            ),
        }
    }
}

/// Why one candidate key's plaintext is no password (the wrong key gives
/// [`Reject::Padding`] nearly always).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// The PKCS#7 padding is not valid.
    Padding,
    /// The plaintext is not UTF-8.
    NotUtf8,
    /// The plaintext does not end with the newline `openssl enc` was fed.
    NoNewline,
    /// A control character (NUL, newline, ...) before that newline.
    Control,
    /// Only the newline.
    Empty,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reject::Padding => "invalid PKCS#7 padding",
            Reject::NotUtf8 => "not UTF-8",
            Reject::NoNewline => "no final newline",
            Reject::Control => "a control character inside",
            Reject::Empty => "an empty password",
        })
    }
}

/// The password from a `password` command's base64 (surrounding ASCII
/// whitespace allowed), without its final newline. Keys are derived as
/// OpenSSL's `EVP_BytesToKey` with MD5 (nova's), then with SHA-256 (what
/// OpenSSL 1.1 and later default to); the first that gives a password
/// wins (the wrong one does by chance about once in 10^11).
pub fn decrypt_password(secret: &Secret, b64: &str) -> Result<Zeroizing<String>, PasswordError> {
    let ciphertext =
        Zeroizing::new(Base64::decode_vec(b64.trim_ascii()).map_err(|_| PasswordError::NotBase64)?);
    if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
        return Err(PasswordError::Invalid(Why::Length(ciphertext.len())));
    }
    let pass = secret.0.as_bytes();
    let md5 = match decrypt_with(&bytes_to_key::<Md5>(pass), &ciphertext) {
        Ok(password) => return Ok(password),
        Err(why) => why,
    };
    let sha256 = match decrypt_with(&bytes_to_key::<Sha256>(pass), &ciphertext) {
        Ok(password) => return Ok(password),
        Err(why) => why,
    };
    Err(PasswordError::Invalid(Why::Keys { md5, sha256 }))
}

/// OpenSSL's `EVP_BytesToKey` with no salt and one round: `key ‖ iv` for
/// AES-128-CBC, from D_1 = H(pass), D_i = H(D_{i−1} ‖ pass).
fn bytes_to_key<H: Digest>(pass: &[u8]) -> Zeroizing<[u8; 2 * BLOCK]> {
    let mut out = Zeroizing::new([0u8; 2 * BLOCK]);
    let mut filled = 0;
    while filled < out.len() {
        let previous = &out[filled.saturating_sub(<H as Digest>::output_size())..filled];
        let mut d = H::new()
            .chain_update(previous)
            .chain_update(pass)
            .finalize();
        let n = d.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&d[..n]);
        d.as_mut_slice().zeroize();
        filled += n;
    }
    out
}

/// The password in `ciphertext` (whole blocks) under one `key ‖ iv`.
fn decrypt_with(key_iv: &[u8; 2 * BLOCK], ciphertext: &[u8]) -> Result<Zeroizing<String>, Reject> {
    let (key, iv) = key_iv.split_at(BLOCK);
    let mut cbc = cbc::Decryptor::<aes::Aes128>::new(
        GenericArray::from_slice(key),
        GenericArray::from_slice(iv),
    );
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    for block in plain.chunks_exact_mut(BLOCK) {
        cbc.decrypt_block_mut(GenericArray::from_mut_slice(block));
    }
    let len = password_len(&plain)?;
    let mut bytes = std::mem::take(&mut *plain);
    bytes.truncate(len);
    // The bytes were checked: this moves them, it does not copy them.
    match String::from_utf8(bytes) {
        Ok(password) => Ok(Zeroizing::new(password)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(Reject::NotUtf8)
        }
    }
}

/// How long the password is at the start of a decrypted `plain`: PKCS#7
/// padding, then the final newline, then nothing of the rest is a control
/// character.
fn password_len(plain: &[u8]) -> Result<usize, Reject> {
    let message = unpad(plain).ok_or(Reject::Padding)?;
    let text = std::str::from_utf8(message).map_err(|_| Reject::NotUtf8)?;
    let password = text.strip_suffix('\n').ok_or(Reject::NoNewline)?;
    if password.chars().any(char::is_control) {
        return Err(Reject::Control);
    }
    if password.is_empty() {
        return Err(Reject::Empty);
    }
    Ok(password.len())
}

/// `plain` without its PKCS#7 padding: n bytes of value n, 1 ≤ n ≤ 16.
fn unpad(plain: &[u8]) -> Option<&[u8]> {
    let n = usize::from(*plain.last()?);
    if n == 0 || n > BLOCK || n > plain.len() {
        return None;
    }
    let (message, padding) = plain.split_at(plain.len() - n);
    padding
        .iter()
        .all(|&b| usize::from(b) == n)
        .then_some(message)
}

/// dom0's public key: decimal, in [2, p − 2].
fn parse_public(text: &str) -> Result<u128, BadKey> {
    let digits = text.trim_ascii();
    if digits.is_empty() {
        return Err(BadKey::Empty);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadKey::NotDecimal);
    }
    if digits.len() > P_DIGITS {
        return Err(BadKey::TooLong(digits.len()));
    }
    // At most 33 digits: below 10^33 < 2^128.
    let value: u128 = digits.parse().map_err(|_| BadKey::NotDecimal)?;
    match value {
        0 | 1 => Err(BadKey::Trivial(value)),
        v if v == P - 1 => Err(BadKey::Trivial(value)),
        v if v >= P => Err(BadKey::NotBelowP(value)),
        v => Ok(v),
    }
}

/// base^exp mod p, by squaring and multiplying.
fn pow_mod(base: u128, mut exp: u128) -> u128 {
    let mut base = base % P;
    let mut acc = 1;
    while exp != 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base);
        }
        base = mul_mod(base, base);
        exp >>= 1;
    }
    acc
}

/// (a · b) mod p for a, b < p: the product (up to 214 bits) in two u128
/// halves from 64-bit limbs, then folded at bit 107, as 2^107 = 1 (mod p).
fn mul_mod(a: u128, b: u128) -> u128 {
    debug_assert!(a < P && b < P);
    const LOW: u128 = u64::MAX as u128;
    // a1, b1 < 2^43.
    let (a0, a1) = (a & LOW, a >> 64);
    let (b0, b1) = (b & LOW, b >> 64);
    // Below 2^108: no overflow.
    let middle = a0 * b1 + a1 * b0;
    let (low, carry) = (a0 * b0).overflowing_add(middle << 64);
    // Below 2^86, as the product is below 2^214.
    let high = a1 * b1 + (middle >> 64) + u128::from(carry);
    // product = high · 2^128 + low = (product >> 107) · 2^107 + (low & p).
    fold(((low >> 107) | (high << 21)) + (low & P))
}

/// x mod p for x < 2^108.
fn fold(x: u128) -> u128 {
    // At most 2^107 = p + 1.
    let x = (x >> 107) + (x & P);
    if x >= P {
        x - P
    } else {
        x
    }
}

#[cfg(test)]
mod tests;
