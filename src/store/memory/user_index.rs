//! The per-user index: a doubly linked list of each user's records, threaded through the
//! records themselves (`prev` and `next`, two `u32`s per session) and headed from the user's
//! interned entry (its payload), so listing or ending a user's sessions touches only theirs.

use super::shard::Shard;
use super::slab::Record;
use super::NIL;

impl Shard {
    /// The first record of `user`'s list (`NIL`: none).
    #[inline]
    pub(super) fn first_of(&self, user: u32) -> u32 {
        self.users.slots[user as usize].extra
    }

    /// Makes `slot`, whose record's `next` is `head` (the user's first record until now), the
    /// first record of `user`'s list.
    #[inline]
    pub(super) fn link_first(&mut self, user: u32, head: u32, slot: u32) {
        if head != NIL {
            self.rec_mut(head).prev = slot;
        }
        self.users.slots[user as usize].extra = slot;
    }

    /// Takes `r` (the record at one of the user's slots) out of its user's list.
    #[inline]
    pub(super) fn unlink(&mut self, r: &Record) {
        if r.prev == NIL {
            self.users.slots[r.user as usize].extra = r.next;
        } else {
            self.rec_mut(r.prev).next = r.next;
        }
        if r.next != NIL {
            self.rec_mut(r.next).prev = r.prev;
        }
    }

    /// The records of a user in this shard.
    #[inline]
    pub(super) fn user_slots(&self, user: Option<u32>) -> impl Iterator<Item = u32> + '_ {
        let mut next = user.map_or(NIL, |u| self.users.slots[u as usize].extra);
        std::iter::from_fn(move || {
            (next != NIL).then(|| {
                let slot = next;
                next = self.rec(slot).next;
                slot
            })
        })
    }
}
