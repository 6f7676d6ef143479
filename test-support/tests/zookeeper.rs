//! The ZooKeeper test handle against the real server: it starts, serves
//! clients, expires a session by ZooKeeper's recipe (the session's
//! ephemeral znode goes, its client is told `Expired`), and restarts with
//! its data.

use std::time::{Duration, Instant};

use drover_test_support::zookeeper::ZooKeeper;
use zookeeper_client::{Acls, Client, CreateMode, SessionState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires_by_the_recipe_and_data_survives_a_restart() {
    let mut zk = ZooKeeper::start();
    assert_eq!(zk.four_letter("ruok"), "imok");

    let proxy = zk.proxy();
    let owner = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&proxy.connect_string())
        .await
        .expect("connect");
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    owner
        .create("/kept", b"k", &persistent)
        .await
        .expect("create /kept");
    owner
        .create("/mine", b"m", &ephemeral)
        .await
        .expect("create /mine");

    let observer = Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    let mut owner_state = owner.state_watcher();
    let started = Instant::now();
    zk.expire_session(&proxy, owner.session().clone()).await;
    assert_eq!(
        observer.check_stat("/mine").await.expect("stat"),
        None,
        "the expired session's ephemeral znode is gone"
    );
    let told = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let state = owner_state.changed().await;
            if state.is_terminated() {
                return state;
            }
        }
    })
    .await
    .expect("the owner learns its session ended");
    assert_eq!(told, SessionState::Expired);
    println!("session expired and noticed in {:?}", started.elapsed());
    drop(observer);

    zk.restart();
    let after = Client::connect(&zk.connect_string())
        .await
        .expect("reconnect");
    let (data, _) = after.get_data("/kept").await.expect("/kept survives");
    assert_eq!(data, b"k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_proxy_disconnects_its_client_and_the_server_expires_the_session() {
    let zk = ZooKeeper::start();
    let proxy = zk.proxy();
    let cut_off = Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .connect(&proxy.connect_string())
        .await
        .expect("connect through the proxy");
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    cut_off
        .create("/cut", b"", &ephemeral)
        .await
        .expect("create /cut");
    let observer = Client::connect(&zk.connect_string())
        .await
        .expect("connect");

    let mut state = cut_off.state_watcher();
    let cut_at = Instant::now();
    proxy.cut();
    let first = tokio::time::timeout(Duration::from_secs(5), state.changed())
        .await
        .expect("the client notices the cut");
    assert_eq!(first, SessionState::Disconnected);
    println!("disconnected after {:?}", cut_at.elapsed());

    let deadline = Instant::now() + Duration::from_secs(15);
    while observer.check_stat("/cut").await.expect("stat").is_some() {
        assert!(
            Instant::now() < deadline,
            "the server never expired the session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("server expired the session after {:?}", cut_at.elapsed());
    proxy.heal();
}
