"""Protocol header sizes, in bytes: what a link carries beyond the payload.

One home for the numbers that linkcheck's verdicts (:mod:`edgetestbed.measure.linkmeasure`),
the capture reader (:mod:`edgetestbed.analysis.pcap`) and the cost model
(:mod:`edgetestbed.analysis.costmodel`) all use. htb and tcpdump count whole Ethernet
frames; TCP's MSS excludes the IP and TCP headers.
"""

ETHERNET_HEADER = 14
SEGMENT_HEADERS = 52          # IPv4 20 + TCP 20 + timestamps option 12: a TCP segment beyond its payload
UDP_HEADERS = 28              # IPv4 20 + UDP 8
TCP_FRAME_HEADERS = ETHERNET_HEADER + SEGMENT_HEADERS   # 66: a TCP frame beyond the MSS
UDP_FRAME_HEADERS = ETHERNET_HEADER + UDP_HEADERS       # 42: a UDP frame beyond its datagram
