//! The [`AccountStore`] checks of the user store suite, re-exported from
//! [`conformance::users`](super::users): canonical lookup by email, verification marks and
//! email changes, alone and racing.

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::users::{assert_none, found, phc, seed, SeedUsers};
use crate::{normalize_email, AccountStore, EmailChange, StoreError, User, UserId};

/// Runs every account check on `store`, one after another: [`email_lookup_is_canonical`],
/// [`mark_email_verified_needs_the_current_address`], [`change_email_moves_the_key`] and
/// [`concurrent_email_changes`]. Run it beside [`run_all`](super::users::run_all) on stores
/// that are also an [`AccountStore`].
///
/// Like the other checks these create their own users (addresses with a random tag), so
/// several runs may share a table.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_account_checks<S: SeedUsers + AccountStore + ?Sized>(store: &S) {
    email_lookup_is_canonical(store).await;
    mark_email_verified_needs_the_current_address(store).await;
    change_email_moves_the_key(store).await;
    concurrent_email_changes(store).await;
}

/// A user seeded with an address in mixed case is found by the canonical form
/// ([`normalize_email`]) of any spelling of it: another case, surrounding spaces, the Kelvin
/// sign (U+212A) for `K`, fullwidth letters; and [`User::email`] returns the address as
/// seeded. An address with a dotless `ı` (U+0131) instead of `i` is another key: it finds
/// nobody, and a user can be seeded with it, each address then finding its own user.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn email_lookup_is_canonical<S: SeedUsers + AccountStore + ?Sized>(store: &S) {
    let tag = tag();
    let typed = format!("Kim.Canonical-{tag}@Example.COM");
    let hash = phc("canonical");
    let id = seed(store, &typed, &hash).await;
    for spelling in [
        typed.clone(),
        typed.to_lowercase(),
        typed.to_uppercase(),
        format!("  {typed}\t"),
        format!("\u{212A}im.canonical-{tag}@example.com"),
        format!("\u{FF2B}\u{FF29}\u{FF2D}.canonical-{tag}@example.com"),
    ] {
        let key = normalize_email(&spelling);
        let user = found(store.find_by_email(&key).await, "find_by_email").unwrap_or_else(|| {
            panic!("find_by_email({key:?}), the canonical form of {spelling:?}, must find the user seeded as {typed:?}")
        });
        assert_eq!(user.id(), id, "find_by_email({key:?}) found another user");
        assert_eq!(
            user.email(),
            typed,
            "User::email must return the address as typed, not its canonical form"
        );
        assert!(
            !user.email_verified(),
            "a new user's address is not verified"
        );
    }
    let dotless = format!("K\u{131}m.Canonical-{tag}@Example.COM");
    assert_none(
        store.find_by_email(&normalize_email(&dotless)).await,
        "find_by_email",
        &normalize_email(&dotless),
    );
    let other = seed(store, &dotless, &phc("dotless")).await;
    let user = found(
        store.find_by_email(&normalize_email(&dotless)).await,
        "find_by_email",
    )
    .expect("the dotless-i user must be found by its own key");
    assert_eq!(
        user.id(),
        other,
        "the dotless ı is another letter: another user"
    );
    assert_eq!(user.email(), dotless);
    let kim = found(
        store.find_by_email(&normalize_email(&typed)).await,
        "find_by_email",
    )
    .expect("the first user is still there");
    assert_eq!(
        kim.id(),
        id,
        "the dotless-i user must not take the address of i"
    );
}

/// [`AccountStore::mark_email_verified`] marks the user only while its stored address has
/// the canonical form of the one given (any spelling of it): not for another address, not
/// for an unknown user, not for the address the user had before a change. Marking again
/// answers `true`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn mark_email_verified_needs_the_current_address<S: SeedUsers + AccountStore + ?Sized>(
    store: &S,
) {
    let tag = tag();
    let typed = format!("Verify-{tag}@Example.com");
    let id = seed(store, &typed, &phc("verify")).await;
    let at = now();
    let other = format!("verify-other-{tag}@example.com");
    assert!(
        !mark(store, &id, &other, at).await,
        "mark_email_verified with another address must answer false"
    );
    assert!(
        !verified(store, &id).await,
        "another address must not verify the user"
    );
    assert!(
        !mark(store, &UserId::new(format!("unknown-{tag}")), &typed, at).await,
        "mark_email_verified of an unknown user must answer false"
    );
    assert!(
        mark(store, &id, &format!(" verify-{tag}@EXAMPLE.COM "), at).await,
        "mark_email_verified with another spelling of the current address must mark it"
    );
    assert!(verified(store, &id).await, "the user must now be verified");
    assert!(
        mark(store, &id, &typed, at).await,
        "marking a verified address again must answer true"
    );

    let fresh = format!("Verify-Fresh-{tag}@Example.com");
    let id = seed(store, &fresh, &phc("verify-fresh")).await;
    let moved = format!("verify-moved-{tag}@example.com");
    change(store, &id, &moved, EmailChange::Changed).await;
    assert!(
        !mark(store, &id, &fresh, at).await,
        "a verification of the address a user had before a change must answer false"
    );
}

/// [`AccountStore::change_email`] refuses another user's address in any spelling (`Taken`,
/// nothing changes), answers `UnknownUser` for an unknown id, and otherwise replaces the
/// address as typed and marks it verified: the new canonical key finds the user, the old one
/// finds nobody, and the old address becomes free for another user. Changing to another
/// spelling of one's own address is `Changed`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn change_email_moves_the_key<S: SeedUsers + AccountStore + ?Sized>(store: &S) {
    let tag = tag();
    let ann = format!("Ann-{tag}@Example.com");
    let kim = format!("Kim-{tag}@Example.com");
    let ann_id = seed(store, &ann, &phc("change-ann")).await;
    let kim_id = seed(store, &kim, &phc("change-kim")).await;
    for taken in [
        kim.clone(),
        kim.to_uppercase(),
        format!(" \u{212A}im-{tag}@example.com "),
    ] {
        change(store, &ann_id, &taken, EmailChange::Taken).await;
    }
    let user = by_key(store, &ann)
        .await
        .expect("a refused change keeps the address");
    assert_eq!((user.id(), user.email()), (ann_id.clone(), ann.as_str()));
    assert!(
        !user.email_verified(),
        "a refused change must not verify the address"
    );
    let user = by_key(store, &kim)
        .await
        .expect("the other user keeps its address");
    assert_eq!(user.id(), kim_id);
    change(
        store,
        &UserId::new(format!("unknown-{tag}")),
        &format!("nobody-{tag}@example.com"),
        EmailChange::UnknownUser,
    )
    .await;

    let new = format!("Ann.New-{tag}@Example.org");
    change(store, &ann_id, &format!("  {new} "), EmailChange::Changed).await;
    let user = by_key(store, &format!("ANN.NEW-{tag}@example.org"))
        .await
        .expect("the new address must find the user");
    assert_eq!(user.id(), ann_id);
    assert_eq!(
        user.email(),
        new,
        "the new address is kept as typed (trimmed)"
    );
    assert!(
        user.email_verified(),
        "change_email marks the new address verified"
    );
    let by_id = found(store.find_by_id(&ann_id).await, "find_by_id").expect("the user exists");
    assert_eq!(by_id.email(), new);
    assert!(
        by_key(store, &ann).await.is_none(),
        "the old address must find nobody after a change"
    );
    let again = format!("ann.new-{tag}@example.ORG");
    change(store, &ann_id, &again, EmailChange::Changed).await;
    assert_eq!(
        by_key(store, &new).await.map(|u| u.email().to_owned()),
        Some(again),
        "another spelling of one's own address is a change"
    );
    let heir = seed(store, &ann, &phc("change-heir")).await;
    assert_eq!(
        by_key(store, &ann).await.map(|u| u.id()),
        Some(heir),
        "an address given up by a change is free for another user"
    );
}

/// Changes to one address racing: 20 users change to spellings of one free address at once,
/// and exactly one gets `Changed`, the others `Taken`; then two users race 10 changes each to
/// another free address, and only one of them gets it (all of its calls `Changed`, all of the
/// other's `Taken`). The address ends with the winner.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn concurrent_email_changes<S: SeedUsers + AccountStore + ?Sized>(store: &S) {
    let tag = tag();
    let target = format!("Race.Target-{tag}@Example.com");
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(seed(store, &format!("race-{i}-{tag}@example.com"), &phc("race")).await);
    }
    let spellings = [target.clone(), target.to_lowercase(), target.to_uppercase()];
    let at = now();
    let outcomes = join_all(ids.iter().enumerate().map(|(i, id)| {
        let spelling = &spellings[i % spellings.len()];
        async move { (id, outcome(store.change_email(id, spelling, at).await)) }
    }))
    .await;
    let winners: Vec<&UserId> = outcomes
        .iter()
        .filter(|(_, o)| *o == EmailChange::Changed)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "of 20 concurrent changes to one address exactly one must succeed: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, EmailChange::Changed | EmailChange::Taken)),
        "the losers of a race must get Taken: {outcomes:?}"
    );
    let owner = by_key(store, &target)
        .await
        .expect("the winner holds the address");
    assert_eq!(
        &owner.id(),
        winners[0],
        "the address must end with the winner"
    );

    let target = format!("Race.Pair-{tag}@Example.com");
    let pair = [&ids[0], &ids[1]];
    let outcomes = join_all((0..20).map(|i| {
        let (id, spelling) = (pair[i % 2], spellings_of(&target, i));
        async move { (id, outcome(store.change_email(id, &spelling, at).await)) }
    }))
    .await;
    let winners: Vec<&UserId> = pair
        .into_iter()
        .filter(|id| {
            outcomes
                .iter()
                .any(|(o, r)| o == id && *r == EmailChange::Changed)
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "of two users racing for one address exactly one must get it: {outcomes:?}"
    );
    for (id, result) in &outcomes {
        let expected = if id == &winners[0] {
            EmailChange::Changed
        } else {
            EmailChange::Taken
        };
        assert_eq!(*result, expected, "{outcomes:?}");
    }
    let owner = by_key(store, &target)
        .await
        .expect("the winner holds the address");
    assert_eq!(
        &owner.id(),
        winners[0],
        "the address must end with the winner"
    );
}

/// One of three spellings of `address`.
fn spellings_of(address: &str, i: usize) -> String {
    match i % 3 {
        0 => address.to_owned(),
        1 => address.to_lowercase(),
        _ => address.to_uppercase(),
    }
}

fn outcome(result: Result<EmailChange, StoreError>) -> EmailChange {
    result.unwrap_or_else(|e| panic!("change_email failed: {e} ({e:?})"))
}

async fn change<S: AccountStore + ?Sized>(
    store: &S,
    id: &UserId,
    email: &str,
    expected: EmailChange,
) {
    let result = outcome(store.change_email(id, email, now()).await);
    assert_eq!(
        result, expected,
        "change_email({id}, {email:?}) must answer {expected:?}"
    );
}

async fn mark<S: AccountStore + ?Sized>(
    store: &S,
    id: &UserId,
    email: &str,
    at: OffsetDateTime,
) -> bool {
    store
        .mark_email_verified(id, email, at)
        .await
        .unwrap_or_else(|e| panic!("mark_email_verified failed: {e} ({e:?})"))
}

async fn verified<S: AccountStore + ?Sized>(store: &S, id: &UserId) -> bool {
    found(store.find_by_id(id).await, "find_by_id")
        .expect("the user exists")
        .email_verified()
}

/// The user found by the canonical form of `email`.
async fn by_key<S: AccountStore + ?Sized>(store: &S, email: &str) -> Option<S::User> {
    found(
        store.find_by_email(&normalize_email(email)).await,
        "find_by_email",
    )
}

/// The current time, to whole milliseconds.
fn now() -> OffsetDateTime {
    super::base_time()
}

fn tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}
