//! Reading and writing pcap files (offline classify, traffic generation).
