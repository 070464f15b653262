//! The built-in blocklist of common passwords and the context word rules (name, service
//! name), through `PasswordPolicy` and through the `Authenticator`.

use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, CommonPasswords, Error, MemoryTokenStore,
    MemoryUserStore, PasswordBlocklist, PasswordContext, PasswordPolicy, PasswordRule, UserRecord,
};

/// Common passwords the old 213-entry list let through, and a few it already had.
const COMMON: [&str; 14] = [
    "1q2w3e4r5t",
    "zaq12wsx",
    "qwertyui",
    "aaaaaaaa",
    "P@ssw0rd",
    "abcd1234",
    "00000000",
    "password1",
    "iloveyou",
    "qwerty123",
    "11111111",
    "12345678",
    "letmein1",
    "sunshine",
];

const STRONG: &str = "correct horse battery staple";

#[test]
fn common_passwords_are_refused_by_the_default_policy() {
    let policy = PasswordPolicy::default();
    for common in COMMON {
        let rejection = policy.check(common, None).expect_err(common);
        assert_eq!(rejection.failed(), &[PasswordRule::Common], "{common}");
        let rejection = policy
            .check_with(common, &PasswordContext::new())
            .expect_err(common);
        assert_eq!(rejection.failed(), &[PasswordRule::Common], "{common}");
    }
}

#[test]
fn case_variants_of_common_passwords_are_refused() {
    let policy = PasswordPolicy::default();
    for variant in ["PassWord1", "PASSWORD1", "ZAQ12WSX", "SunShine", "p@SSW0RD"] {
        let rejection = policy.check(variant, None).expect_err(variant);
        assert_eq!(rejection.failed(), &[PasswordRule::Common], "{variant}");
    }
}

#[test]
fn the_list_holds_at_least_10_000_entries_3_000_of_them_8_characters_or_longer() {
    assert!(
        CommonPasswords::len() >= 10_000,
        "{}",
        CommonPasswords::len()
    );
    assert_eq!(CommonPasswords::LIST.len(), CommonPasswords::len());
    let long = CommonPasswords::LIST
        .iter()
        .filter(|p| p.chars().count() >= PasswordPolicy::DEFAULT_MIN_CHARS)
        .count();
    assert!(long >= 3_000, "{long}");
    // Every entry is on the list, whatever its case.
    for entry in CommonPasswords::LIST {
        assert!(CommonPasswords.contains(entry), "{entry}");
        assert!(CommonPasswords.contains(&entry.to_uppercase()), "{entry}");
    }
}

#[test]
fn strong_passphrases_are_accepted() {
    let policy = PasswordPolicy::default().service_name("Acme Budgets");
    let user = PasswordContext::new()
        .email("ann@example.com")
        .name("Annabel Lee");
    for strong in [
        STRONG,
        "purple elephant umbrella 1972",
        "Tr0ub4dor&3 is not it",
    ] {
        assert!(
            policy.check(strong, Some("ann@example.com")).is_ok(),
            "{strong}"
        );
        assert!(policy.check_with(strong, &user).is_ok(), "{strong}");
        assert!(!CommonPasswords.contains(strong), "{strong}");
    }
}

#[test]
fn the_users_name_is_refused_in_the_password() {
    let policy = PasswordPolicy::default();
    let user = PasswordContext::new()
        .email("al@example.com")
        .name("Alberto de la Cruz");
    for bad in [
        "alberto1990",
        "ALBERTO de la cruz",
        "cruz cruz cruz",
        "AlbertoDeLaCruz",
        "alberto-de-la-cruz",
    ] {
        let rejection = policy.check_with(bad, &user).expect_err(bad);
        assert_eq!(rejection.failed(), &[PasswordRule::ContainsName], "{bad}");
    }
    // Short words ("de", "la") are refused only as the whole password.
    assert!(policy.check_with("lady delaware gold", &user).is_ok());
    let rejection = PasswordPolicy::default()
        .min_chars(2)
        .check_with("La", &user)
        .expect_err("a whole short word");
    assert_eq!(rejection.failed(), &[PasswordRule::ContainsName]);
    // `check` knows no name.
    assert!(policy.check("alberto1990", Some("al@example.com")).is_ok());
    // Email and name both fail, in order.
    let rejection = policy
        .check_with(
            "al@example.com alberto",
            &PasswordContext::new()
                .email("al@example.com")
                .name("Alberto"),
        )
        .expect_err("both");
    assert_eq!(
        rejection.failed(),
        &[PasswordRule::ContainsEmail, PasswordRule::ContainsName]
    );
    assert_eq!(
        rejection.to_string(),
        "choose another password: it must not contain your email address; \
         it must not contain your name"
    );
}

#[test]
fn the_service_name_is_refused_in_the_password() {
    let policy = PasswordPolicy::default().service_name("Acme Budgets");
    for bad in [
        "acme budgets",
        "ACMEBUDGETS!",
        "my budgets password",
        "acme-2024-acme",
    ] {
        let rejection = policy.check(bad, None).expect_err(bad);
        assert_eq!(
            rejection.failed(),
            &[PasswordRule::ContainsServiceName],
            "{bad}"
        );
        assert!(
            rejection.to_string().contains("name of this site or app"),
            "{rejection}"
        );
        // Not without a service name, nor with context words off.
        assert!(PasswordPolicy::default().check(bad, None).is_ok(), "{bad}");
        assert!(
            policy.clone().context_words(false).check(bad, None).is_ok(),
            "{bad}"
        );
    }
}

#[test]
fn change_password_refuses_a_common_password() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new())
                .password_hasher(Argon2Hasher::insecure_for_tests())
                .build();
            let hash = auth
                .hash_password_with_policy(STRONG, "ann@example.com")
                .await
                .expect("a strong password");
            auth.users()
                .insert(UserRecord::new(1_i64, "ann@example.com", hash))
                .expect("new user");
            let login = auth
                .login("ann@example.com", STRONG, ClientInfo::none())
                .await
                .expect("login");
            for common in ["zaq12wsx", "P@ssw0rd", "Qwertyui"] {
                let refused = auth
                    .change_password(&login.session, STRONG, common, &ClientInfo::none())
                    .await;
                match refused {
                    Err(Error::WeakPassword(rejection)) => {
                        assert_eq!(rejection.failed(), &[PasswordRule::Common], "{common}")
                    }
                    other => panic!("{common}: {other:?}"),
                }
                assert!(matches!(
                    auth.hash_password_with_policy(common, "bo@example.com")
                        .await,
                    Err(Error::WeakPassword(_))
                ));
            }
            // The old password still works: nothing was changed.
            assert!(auth
                .login("ann@example.com", STRONG, ClientInfo::none())
                .await
                .is_ok());
        });
}
