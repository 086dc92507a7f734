"""Handset protection (手机保障服务): phones enrolled by IMEI in a pilot programme, claims for
damage, loss and theft, and a same-model replacement from a business hall's stock."""
