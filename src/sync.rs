//! Locks that outlive a panic elsewhere. Rivulet's locks guard plain data that every holder
//! leaves consistent, so a poisoned lock (a panic while held) is taken as it is rather than
//! spreading the panic to every later user.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) trait MutexExt<T> {
    /// Locks, recovering the data from a poisoned lock.
    fn locked(&self) -> MutexGuard<'_, T>;
    /// The data, recovered from a poisoned lock.
    fn into_data(self) -> T;
}

impl<T> MutexExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn into_data(self) -> T {
        self.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) trait RwLockExt<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let lock = std::sync::Arc::new(Mutex::new(7));
        let held = lock.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(lock.is_poisoned());
        assert_eq!(*lock.locked(), 7);
        let rw = RwLock::new(1);
        *rw.write_locked() += 1;
        assert_eq!(*rw.read_locked(), 2);
    }
}
