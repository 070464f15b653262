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

/// A second factor as a client sends it: `{"code": "123456"}` (from the authenticator app)
/// or `{"recovery_code": "abcd-efgh-ijkl-mnop"}`. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct CodeBody {
    /// A code from the authenticator app.
    #[serde(default, deserialize_with = "optional_secret")]
    pub code: Option<Zeroizing<String>>,
    /// A recovery code.
    #[serde(default, deserialize_with = "optional_secret")]
    pub recovery_code: Option<Zeroizing<String>>,
}

impl CodeBody {
    /// The proof the body holds.
    ///
    /// # Errors
    /// [`Error::InvalidCode`] unless exactly one of `code` and `recovery_code` is given.
    pub fn proof(&self) -> Result<SecondFactorProof<'_>, Error> {
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

/// The second step of a login: `{"mfa_token", "code"}` or `{"mfa_token", "recovery_code"}`.
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
