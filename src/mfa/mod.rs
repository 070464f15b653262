//! Second factors: TOTP codes from an authenticator app, single-use recovery codes, and
//! where they are stored.
//!
//! The [`Authenticator`](crate::Authenticator) runs the flows (enrolment, the two-step login,
//! disabling) once [`AuthenticatorBuilder::second_factors`](crate::AuthenticatorBuilder::second_factors)
//! gives it a [`SecondFactors`] configuration; this module holds the building blocks and the
//! storage contract.

mod store;

pub use store::{MemorySecondFactorStore, RecoveryCodeDigest, SecondFactorStore, TotpRecord};
