//! The bodies of the second-factor routes: the second step of a login, and a code proving
//! the user for enrolment, disabling and regenerating recovery codes.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::mfa::SecondFactorProof;

fn secret<'de, D: Deserializer<'de>>(de: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(de).map(Zeroizing::new)
}

fn optional_secret<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<Zeroizing<String>>, D::Error> {
    Option::<String>::deserialize(de).map(|s| s.map(Zeroizing::new))
}

/// A second factor as a client sends it: `{"code": "123456"}` (from the authenticator app),
/// `{"recovery_code": "abcd-efgh-ijkl-mnop"}`, or (feature `passkeys`)
/// `{"passkey": {"ceremony": "...", "credential": {...}}}`. Codes are zeroized on drop;
/// everything is redacted in `Debug`.
#[derive(Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct CodeBody {
    /// A code from the authenticator app.
    #[serde(default, deserialize_with = "optional_secret")]
    pub code: Option<Zeroizing<String>>,
    /// A recovery code.
    #[serde(default, deserialize_with = "optional_secret")]
    pub recovery_code: Option<Zeroizing<String>>,
    /// A passkey's answer to a ceremony.
    #[cfg(feature = "passkeys")]
    #[serde(default)]
    pub passkey: Option<PasskeyProofBody>,
}

/// A passkey's answer as a client sends it: the ceremony token
/// ([`Authenticator::begin_passkey_second_factor`](crate::Authenticator::begin_passkey_second_factor)
/// gave it) and what `navigator.credentials.get` returned, as JSON.
#[cfg(feature = "passkeys")]
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct PasskeyProofBody {
    /// The ceremony token.
    pub ceremony: String,
    /// The assertion.
    pub credential: Box<crate::mfa::PublicKeyCredential>,
}

#[cfg(feature = "passkeys")]
impl fmt::Debug for PasskeyProofBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasskeyProofBody(..)")
    }
}

impl CodeBody {
    /// The proof the body holds.
    ///
    /// # Errors
    /// [`Error::InvalidCode`] unless exactly one of `code`, `recovery_code` (and `passkey`)
    /// is given.
    pub fn proof(&self) -> Result<SecondFactorProof<'_>, Error> {
        #[cfg(feature = "passkeys")]
        if let Some(passkey) = &self.passkey {
            if self.code.is_some() || self.recovery_code.is_some() {
                return Err(Error::InvalidCode);
            }
            return Ok(SecondFactorProof::Passkey {
                ceremony: &passkey.ceremony,
                credential: &passkey.credential,
            });
        }
        match (&self.code, &self.recovery_code) {
            (Some(code), None) => Ok(SecondFactorProof::Totp(code)),
            (None, Some(code)) => Ok(SecondFactorProof::RecoveryCode(code)),
            _ => Err(Error::InvalidCode),
        }
    }
}

impl fmt::Debug for CodeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeBody")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field(
                "recovery_code",
                &self.recovery_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The second step of a login: `{"mfa_token", "code"}`, `{"mfa_token", "recovery_code"}` or
/// `{"mfa_token", "passkey": {"ceremony", "credential"}}`.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct SecondFactorLoginBody {
    /// The pending-login token the first step answered with.
    #[serde(deserialize_with = "secret")]
    pub mfa_token: Zeroizing<String>,
    /// The code.
    #[serde(flatten)]
    pub proof: CodeBody,
}

impl fmt::Debug for SecondFactorLoginBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactorLoginBody")
            .field("mfa_token", &"<redacted>")
            .field("proof", &self.proof)
            .finish()
    }
}
