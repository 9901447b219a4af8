"""The IRC numeric replies chatd sends, by name (RFC 1459/2812, modern.ircdocs.horse, IRCv3 SASL).

One file of named constants, so a handler reads `ERR_NOSUCHNICK`, not "401".
"""

from __future__ import annotations

# --- registration ---------------------------------------------------------------
RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_MOTDSTART = "375"
RPL_MOTD = "372"
RPL_ENDOFMOTD = "376"
ERR_NOMOTD = "422"

# --- SASL (IRCv3 sasl-3.1) ------------------------------------------------------
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

# --- users ------------------------------------------------------------------------
RPL_UMODEIS = "221"
RPL_AWAY = "301"
RPL_USERHOST = "302"
RPL_ISON = "303"
RPL_UNAWAY = "305"
RPL_NOWAWAY = "306"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_ENDOFWHO = "315"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_WHOISACCOUNT = "330"
RPL_WHOREPLY = "352"
RPL_ENDOFWHOWAS = "369"

# --- channels -----------------------------------------------------------------------
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_NAMREPLY = "353"
RPL_ENDOFNAMES = "366"
RPL_ENDOFBANLIST = "368"
RPL_ENDOFEXCEPTLIST = "349"
RPL_ENDOFINVITELIST = "347"

# --- errors -------------------------------------------------------------------------
ERR_NOSUCHNICK = "401"
ERR_NOSUCHCHANNEL = "403"
RPL_TRYAGAIN = "263"  # the command was not done (the database is away): try again
ERR_WASNOSUCHNICK = "406"
ERR_CANNOTSENDTOCHAN = "404"
ERR_TOOMANYTARGETS = "407"
ERR_INVALIDCAPCMD = "410"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NOTONCHANNEL = "442"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTERED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_BADCHANNAME = "479"
ERR_CHANOPRIVSNEEDED = "482"
ERR_RESTRICTED = "484"
ERR_UMODEUNKNOWNFLAG = "501"
ERR_USERSDONTMATCH = "502"
