//! EAL init is once per process, so its failure modes get their own test binary: objects
//! before init, a bad argument (DPDK lets the init be retried after an argument error), a
//! second init, and cleanup (refused while DPDK objects are alive).

mod dpdk_common;

use dataplane::dpdk::{DpdkError, Eal, Mempool, Port};
use dpdk_common::eal_args;

#[test]
fn eal_init_failures_and_cleanup() {
    assert!(!Eal::is_initialized());
    assert_eq!(Mempool::new("early", 63).unwrap_err(), DpdkError::EalNotInitialized);
    assert_eq!(Port::from_id(0).unwrap_err(), DpdkError::EalNotInitialized);

    let err = Eal::init(["--no-huge", "--definitely-not-an-eal-option"]).unwrap_err();
    assert_eq!(
        err,
        DpdkError::Call {
            call: "rte_eal_init(--no-huge --definitely-not-an-eal-option)".into(),
            errno: 22,
            message: "Invalid argument".into(),
        }
    );
    assert!(!Eal::is_initialized());

    let mut eal = Eal::init(eal_args()).expect("init after a rejected argument");
    assert!(Eal::is_initialized());
    assert!(!eal.has_hugepages());
    assert_eq!(Eal::init(eal_args()).unwrap_err(), DpdkError::EalAlreadyInitialized);

    let pool = Mempool::new("cleanup_pool", 63).unwrap();
    assert_eq!(eal.cleanup().unwrap_err().to_string(), "EAL cleanup refused: 1 DPDK objects are still alive");
    assert!(Eal::is_initialized());
    drop(pool);
    eal.cleanup().unwrap();
    assert!(!Eal::is_initialized());
    assert_eq!(Mempool::new("late", 63).unwrap_err(), DpdkError::EalNotInitialized);
    assert_eq!(Eal::init(eal_args()).unwrap_err(), DpdkError::EalAlreadyInitialized);
}
