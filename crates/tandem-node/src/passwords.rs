//! Invitation passwords: slow salted hashes (argon2id), compared in constant time.
//!
//! Every hash and check borrows its argon2 memory (19 MiB with the default
//! parameters) from one node-wide pool of [`MAX_PARALLEL_HASHES`] buffers:
//! however many joins arrive at once, password work holds at most that much
//! memory, and the buffers are reused rather than freed (the allocator would
//! otherwise keep each freed 19 MiB block in its heap: about 390 MB of RSS
//! after 50 joins, measured with `make fanout`).

use std::sync::{Condvar, Mutex};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use crate::error::NodeError;

/// Shortest invitation password accepted (characters): eight, so that the
/// guesses the throttle still lets through (about one per 8 s per
/// invitation under attack, `tandem_session::PasswordThrottle`) cannot
/// exhaust it. Generated passwords are longer.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Checks a new invitation password's length: the line to show when it is
/// refused (`what` names the setting, e.g. `invitation.password`).
pub fn check_new_password(what: &str, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(format!(
            "{what} must be at least {MIN_PASSWORD_LEN} characters (it has {chars})"
        ));
    }
    if password.len() > tandem_proto::MAX_PASSWORD_LEN {
        return Err(format!(
            "{what} must be at most {} bytes",
            tandem_proto::MAX_PASSWORD_LEN
        ));
    }
    Ok(())
}

/// Password hashes or checks that run at once on a node; more wait.
pub const MAX_PARALLEL_HASHES: usize = 4;

/// Largest argon2 memory (KiB) a stored hash may ask for: four times the
/// default, so a hash from a stronger configuration still verifies.
const MAX_MEMORY_KIB: u32 = 4 * Params::DEFAULT_M_COST;

/// The node's argon2 memory buffers and how many are lent out.
struct MemoryPool {
    state: Mutex<(Vec<Vec<Block>>, usize)>,
    returned: Condvar,
}

static POOL: MemoryPool = MemoryPool {
    state: Mutex::new((Vec::new(), 0)),
    returned: Condvar::new(),
};

impl MemoryPool {
    /// Runs `f` with at least `blocks` blocks of memory, waiting for a
    /// buffer when [`MAX_PARALLEL_HASHES`] are lent out.
    fn with_memory<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut memory = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.1 >= MAX_PARALLEL_HASHES {
                state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.1 += 1;
            state.0.pop().unwrap_or_default()
        };
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let result = f(&mut memory[..blocks]);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.push(memory);
        state.1 -= 1;
        self.returned.notify_one();
        result
    }
}

/// Hashes a password into a PHC string (never stored or logged in clear).
pub fn hash(password: &str) -> Result<String, NodeError> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| NodeError::Invalid(format!("cannot hash password: {e}")))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    POOL.with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, memory)
    })
    .map_err(|e| NodeError::Invalid(format!("cannot hash password: {e}")))?;
    let output = argon2::password_hash::Output::new(&out)
        .map_err(|e| NodeError::Invalid(format!("cannot hash password: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| NodeError::Invalid(format!("cannot hash password: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks a password against a PHC string, in constant time; false for a
/// malformed hash or one asking for more than `MAX_MEMORY_KIB`.
pub fn verify(hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = POOL.with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, memory)
    });
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A random password people can read out and type: four groups of four
/// characters without look-alikes.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = hash("correct horse").unwrap();
        assert!(!h.contains("correct horse"));
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "correct hors"));
        assert!(!verify("not a hash", "correct horse"));
    }

    #[test]
    fn hashes_are_standard_argon2id_phc_strings() {
        use argon2::password_hash::PasswordVerifier;
        let h = hash("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // The stock verifier agrees with ours, both ways.
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        let stock = {
            use argon2::password_hash::PasswordHasher;
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"other", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify(&stock, "other"));
        assert!(!verify(&stock, "Other"));
    }

    #[test]
    fn a_hash_asking_for_too_much_memory_is_refused() {
        let h = hash("pw").unwrap();
        let greedy = h.replace("m=19456", &format!("m={}", MAX_MEMORY_KIB + 8));
        assert!(!verify(&greedy, "pw"));
    }

    #[test]
    fn parallel_checks_share_the_bounded_pool() {
        let h = hash("pw").unwrap();
        let threads: Vec<_> = (0..3 * MAX_PARALLEL_HASHES)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || verify(&h, if i % 2 == 0 { "pw" } else { "no" }))
            })
            .collect();
        let results: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(results.iter().step_by(2).all(|ok| *ok));
        assert!(results.iter().skip(1).step_by(2).all(|ok| !*ok));
        let state = POOL.state.lock().unwrap();
        assert!(
            state.0.len() <= MAX_PARALLEL_HASHES,
            "{} buffers",
            state.0.len()
        );
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate();
        assert_eq!(a.len(), 19);
        assert_ne!(a, generate());
    }
}
